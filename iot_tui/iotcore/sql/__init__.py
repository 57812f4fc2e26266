"""AWS IoT SQL (version 2016-03-23): parser, evaluator and substitution templates.

Pure code shared by the local core's rules engine and the rules builder's dry run::

    rule = parse("SELECT * FROM 'sensors/+/temperature' WHERE temperature > 30")
    message = rule.evaluate(payload, EvalContext(topic="sensors/kitchen/temperature"))
    topic = substitute_template("alerts/${topic(2)}", payload, context)

``evaluate`` answers None when the topic does not match FROM or WHERE is not true.
"""

from .context import EvalContext, ShadowGetter
from .nodes import Select, SelectItem
from .parser import SqlParseError
from .rule import Incoming, Rule, parse, prepare
from .templates import substitute_template
from .values import UNDEFINED

__all__ = [
    "UNDEFINED",
    "EvalContext",
    "Incoming",
    "Rule",
    "Select",
    "SelectItem",
    "ShadowGetter",
    "SqlParseError",
    "parse",
    "prepare",
    "substitute_template",
]
