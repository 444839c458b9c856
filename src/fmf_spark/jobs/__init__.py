"""Entry points that platforms call inside the wheel (the Lambda handler)."""
