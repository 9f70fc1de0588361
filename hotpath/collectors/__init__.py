"""Collectors watch the program and write into the store; they never format text."""
