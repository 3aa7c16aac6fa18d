"""The API's endpoints, one blueprint per area."""
