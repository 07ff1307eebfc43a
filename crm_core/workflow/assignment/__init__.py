"""Assignment rules: who owns a new customer, lead or ticket (round-robin or least loaded,
within a team or a list of users, with capacity and working hours)."""
