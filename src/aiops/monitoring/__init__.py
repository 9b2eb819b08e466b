"""Monitoring: alert rules evaluated over window stats (`alerts`), and their notifications
delivered to receivers (`delivery`)."""
