"""Local stand-ins for Microsoft Graph and the LiteLLM admin API (tests, demo, benchmark; never deployed)."""
