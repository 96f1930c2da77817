"""PromptWarden's Discord-free core: screening, policy, storage and configuration."""

__version__ = "0.1.0"
