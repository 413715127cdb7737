"""See the package docstring of rxconnector for the layout."""
