"""Where the prepared graph becomes a plan: arena layout and the compiled node list."""
