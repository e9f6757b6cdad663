"""Who may call, and how much: API keys, end-user tokens, admission of a caller, rate limits,
request and document limits, deadlines. Every refusal before a lookup runs is decided here."""
