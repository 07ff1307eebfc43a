"""Personal information protection (PIPL): consent records, a person's data export and erasure
by anonymisation.

- :mod:`.models`: :class:`~.models.Consent` (purpose, channel, time, source, withdrawn) and
  :func:`~.models.has_consent`;
- :mod:`.export`: :func:`~.export.export_person`, the JSON document of everything the CRM holds
  about one person (a person customer or a contact);
- :mod:`.erase`: :func:`~.erase.erase_customer` and :func:`~.erase.erase_contact`, which
  anonymise the person and redact the personal values from the audit history;
- :mod:`.views`: the Consents screen and API, and the export and erase actions of the 360° page;
- :mod:`.cli`: ``crm privacy export`` and ``crm privacy erase``.
"""

from .models import Consent, has_consent

__all__ = ["Consent", "has_consent"]
