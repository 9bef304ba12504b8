"""The registered Functions, indexed once: FunctionApp.get_functions() refuses a second call."""

from __future__ import annotations

import function_app

FUNCTIONS = {f.get_function_name(): f for f in function_app.app.get_functions()}
