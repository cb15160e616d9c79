"""mobilize: peacetime/wartime mobilisation for community grid governance."""

__version__ = "0.1.0"
