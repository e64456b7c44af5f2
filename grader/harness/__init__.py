"""Code that runs inside the sandbox: one entry module per stage, plus what they share."""
