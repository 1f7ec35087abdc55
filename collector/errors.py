"""User-facing errors: each prints as one line naming the file, field or URL at fault."""


class UserError(Exception):
    """An error caused by the user's input or environment; the CLI prints it as one line."""


class ConfigError(UserError):
    """A configuration file is missing, malformed or names something unknown."""


class EndpointError(UserError):
    """The endpoint under test is unreachable or not healthy."""
