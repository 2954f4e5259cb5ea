"""source_error.py: the exception every weight-file reader in weights_tools/ raises for a file it refuses.

str(error) is one line that names the tensor (or the part of the file) at fault; the command-line tools
prefix it with their own name and the file's path and exit with status 1.
"""


class SourceError(Exception):
    """A weight file that cannot be read, or that asks for something the readers refuse to do."""
