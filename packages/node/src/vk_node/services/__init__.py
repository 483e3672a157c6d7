"""Business rules of the local API that span more than one repository call."""
