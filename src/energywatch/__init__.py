"""energywatch: multilingual news monitoring for energy security."""

__version__ = "0.1.0"
