"""sr-kit: building blocks, evaluation protocol and ablation tools for lightweight super-resolution.

Importing the package pulls in neither matplotlib nor ipywidgets.
"""

__version__ = "0.1.0"
