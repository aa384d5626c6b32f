"""This project's own design-by-contract helpers (a top-level package named `contracts`)."""


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


OWNER = "crowded"
