"""AI-Horde model reference: data records, validation, static-site build, publishing and replica client."""

__version__ = "0.1.0"
