"""Small runnable examples of the pygase API."""
