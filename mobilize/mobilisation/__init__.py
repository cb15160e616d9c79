"""Wartime: the switch, who is called, the assignment engine, and what commanders change."""
