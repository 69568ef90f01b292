"""The ``neuroenc`` command line."""
