"""HTTP routes of the router, one module per resource."""
