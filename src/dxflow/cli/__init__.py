"""The ``dxflow`` command line: thin click commands over the SDK and the daemons."""
