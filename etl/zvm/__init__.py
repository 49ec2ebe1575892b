"""The source side: talking to Zerto Virtual Managers (client, auth, dates, simulator)."""
