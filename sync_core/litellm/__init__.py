"""Reading and writing LiteLLM through its admin API (httpx)."""
