"""What runs next to a client app: the session factory apps call, and the launcher."""
