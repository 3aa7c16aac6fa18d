"""The UI's pages, one module per page; each adds its routes to the one blueprint."""
