"""Live subscriptions: balances pushed to apps as changes commit."""
