"""Message templates: the model, local validation of a creation, pre-send validation and preview.

``validate_send(template, components)`` raises ``TemplateSendError`` (``.code``, ``.reason``, ``.meta_code``)
when a template message would be refused by Meta (not approved, parameters that do not match);
``render(template, components)`` is the text a recipient would see; ``send_components(template, values)``
builds Meta's send ``components`` from plain values. ``check_create`` lists what is wrong with a new
template before it goes to Meta. ``templates.registry`` reads the per-WABA registry from PostgreSQL.
"""

from templates.creation import Problem, TemplateCreate, check_create
from templates.model import Template, Variable, variables
from templates.sending import TemplateSendError, render, send_components, validate_send

__all__ = ["Problem", "Template", "TemplateCreate", "TemplateSendError", "Variable", "check_create", "render",
           "send_components", "validate_send", "variables"]
