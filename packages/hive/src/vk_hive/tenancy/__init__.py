"""Organizations, members and invitations."""
