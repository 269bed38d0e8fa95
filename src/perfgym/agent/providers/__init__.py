"""Model providers: each turns a conversation into the next assistant turn."""
