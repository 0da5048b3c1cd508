"""The build: data records -> the static site tree (outputs, route table, atomic writer)."""
