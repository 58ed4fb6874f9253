"""What every settings model shares: the strict base classes, common value types, error lines.

Two base classes:

* :class:`Strict`: a ``params.yaml`` section. Unknown keys are errors, values are not
  coerced across types (``"4"`` is not an integer, ``true`` is not a number), and the
  object is frozen.
* :class:`Spec`: a :class:`Strict` model that library code also builds itself
  (``TrainConfig(epochs=3)``). Built that way, a bad value raises an :class:`EpamnetError`
  naming the key (``train.epochs: input should be greater than 0 (got 0)``); validated
  inside a larger document (:func:`epamnet.config.validate_params`) it raises pydantic's
  ``ValidationError``, which that document turns into a line naming the full key.

Cross-field rules raise :func:`rule_error`, which names the key at fault, so that their
messages read like those of single-value constraints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from epamnet.errors import EpamnetError, did_you_mean

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
#: A non-empty sequence of positive integers; a YAML list becomes a tuple (its items stay strict).
PositiveInts = Annotated[tuple[PositiveInt, ...], Field(min_length=1, strict=False)]

#: The message of a key that no model declares (a close known key is suggested after it).
UNKNOWN_KEY = "unknown setting; remove the unknown key or fix its spelling"
#: Known keys listed in that message when there are no more than this many and none is close.
MAX_LISTED_KEYS = 12


class Strict(BaseModel):
    """Base model: unknown keys are errors, values are not coerced across types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Spec(Strict):
    """A settings object that code builds too: a bad value raises :class:`EpamnetError`.

    ``where`` is the key path the fields live under in ``params.yaml`` (``"train"``), the
    prefix of the keys named in error messages.
    """

    where: ClassVar[str] = ""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise settings_error(exc, type(self).where, model=type(self)) from None

    # Marked as pydantic's own __init__ (as pydantic's RootModel does): this one only
    # translates errors, so validation inside other models and model_validate() need not
    # call it, and keep raising ValidationError for the caller to locate in its document.
    __init__.__pydantic_base_init__ = True

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        """Build from plain values (YAML: lists become tuples); a bad or unknown key raises EpamnetError."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            raise settings_error(exc, cls.where, model=cls) from None

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied, validated like a new object."""
        return type(self)(**{**dict(self), **changes})


# ---------------------------------------------------------------------------------------
# Error messages: one line naming the key and the problem.


def rule_error(key: str, problem: str) -> PydanticCustomError:
    """A broken cross-field rule, for a model validator to raise.

    ``key``: the field at fault, relative to the model (``"warmup_epochs"``,
    ``"pose.clip_len"``); ``problem``: what is wrong, values included.
    """
    return PydanticCustomError("rule", "{problem}", {"problem": problem, "key": key})


def error_key(err: ErrorDetails, where: str = "", *, brackets: bool = False) -> str:
    """The dotted key of one pydantic error under ``where``; list items as ``.0`` or ``[0]``."""
    loc: list[str | int] = [*err.get("loc", ())]
    if err.get("type") == "rule":
        loc += str(err.get("ctx", {}).get("key", "")).split(".")
    key = where
    for part in loc:
        if brackets and isinstance(part, int):
            key += f"[{part}]"
        elif part != "":
            key += f".{part}" if key else str(part)
    return key or "(top level)"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The settings model an annotation holds (``Model``, ``Model | None``, ``list[Model]``...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if (found := _model_in(arg)) is not None:
            return found
    return None


def known_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys the settings model at ``loc`` inside ``model`` declares ([] if there is none)."""
    for part in loc:
        if isinstance(part, int):  # an item of a list: the model is the item type's
            continue
        field = model.model_fields.get(part)
        sub = _model_in(field.annotation) if field is not None else None
        if sub is None:
            return []
        model = sub
    return list(model.model_fields)


def _allowed_values(err: ErrorDetails) -> list[str]:
    """The values a Literal accepts, from pydantic's ``expected`` text (``"'a', 'b' or 'c'"``)."""
    return re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))


def _unknown_key(err: ErrorDetails, model: type[BaseModel] | None) -> str:
    """An unknown key's problem: the closest declared key, else the keys declared there."""
    loc = list(err.get("loc", ())) or [""]
    keys = known_keys(model, loc[:-1]) if model is not None else []
    if hint := did_you_mean(loc[-1], keys):
        return f"unknown setting{hint} (or remove the unknown key)"
    listed = f" (known keys here: {', '.join(keys)})" if 0 < len(keys) <= MAX_LISTED_KEYS else ""
    return f"{UNKNOWN_KEY}{listed}"


def error_problem(err: ErrorDetails, model: type[BaseModel] | None = None) -> str:
    """What is wrong, in lower case, with the offending value when it is a plain one.

    ``model``: the model that was validated; with it an unknown key gets the closest
    key it declares at that place as a suggestion (``did you mean 'epochs'?``). A value
    outside a fixed set gets the closest allowed value.
    """
    if err.get("type") == "extra_forbidden":
        return _unknown_key(err, model)
    msg = err.get("msg", "") or "invalid value"
    if err.get("type") == "value_error":  # a validator's ValueError: its message shows the value
        return msg.removeprefix("Value error, ")
    msg = msg[0].lower() + msg[1:]
    if err.get("type") == "rule":
        return msg
    got = err.get("input")
    shown = "" if isinstance(got, (dict, list, BaseModel)) or got is None else f" (got {got!r})"
    if err.get("type") == "literal_error" and isinstance(got, str):
        shown += did_you_mean(got, _allowed_values(err))
    return f"{msg}{shown}"


def _more(exc: ValidationError) -> str:
    n = exc.error_count()
    return f" (and {n - 1} more)" if n > 1 else ""


def format_error(exc: ValidationError, where: str = "", model: type[BaseModel] | None = None) -> str:
    """``<key>: <problem>`` for the first error of ``exc`` (and how many more there are).

    ``model``: the model ``exc`` comes from, to suggest the closest key for an unknown one.
    """
    err = exc.errors()[0]
    return f"{error_key(err, where)}: {error_problem(err, model)}{_more(exc)}"


def settings_error(
    exc: ValidationError, where: str = "", source: str = "", model: type[BaseModel] | None = None
) -> EpamnetError:
    """The one-line :class:`EpamnetError` for ``exc``; ``source`` (a file name) leads it."""
    line = format_error(exc, where, model)
    return EpamnetError(f"{source}: {line}" if source else line)


def nested_rule_error(exc: ValidationError, where: str) -> PydanticCustomError:
    """The first error of ``exc`` (a model built from a document's values) as a rule error of
    the document, at key ``where``: for a validator that combines sections into one model."""
    err = exc.errors()[0]
    return rule_error(error_key(err, where), error_problem(err))
