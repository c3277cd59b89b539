"""The API's viewsets, one module per resource."""
