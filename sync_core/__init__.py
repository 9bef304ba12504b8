"""entra-litellm-sync: keep LiteLLM teams in step with Microsoft Entra ID groups.

read the world (graph/, litellm/) -> compute a plan (planner) -> show it or apply it (executor).
"""
