"""Which opt-out list answers for which sender: the common model mapped onto AWS's.

AWS keeps opt-outs per *list*, not per sender: a number in a list is opted out of every
phone number and pool that uses the list, and of no other. optouts speaks of
sender–recipient pairs, so the setting ``sender_lists`` says which list each sender uses;
senders it does not name use the default list (``sender_lists["*"]``, else the setting
``opt_out_list``, else AWS's ``Default``). From that, exactly:

- a check for sender S reads S's list;
- add and remove for S write S's list; for ``*`` (every sender of the account) they write
  every list in use, so an account-wide STOP reaches senders with lists of their own too;
- a record of list L is reported once for each sender that names L, and under ``*`` when
  L is the default list (``*`` then reads "every sender without a list of its own"); a
  check for ``*`` reads the default list, as a listing does.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from optouts.plugin import WILDCARD

from ._model import DEFAULT_LIST

__all__ = ["ListMap"]


def _explicit(mapping: Mapping[str, str]) -> dict[str, str]:
    return {sender: name for sender, name in mapping.items() if sender != WILDCARD}


@attrs.frozen
class ListMap:
    default: str = DEFAULT_LIST
    """The list of every sender ``explicit`` does not name (and of ``*``)."""
    explicit: Mapping[str, str] = attrs.field(factory=dict, converter=_explicit)
    """Sender → list, for the senders given a list of their own."""
    default_setting: str = "opt_out_list"
    """The setting the default list came from, for errors that point at it."""

    @classmethod
    def of(cls, opt_out_list: str, sender_lists: Mapping[str, str] | None) -> ListMap:
        mapping = dict(sender_lists or {})
        if WILDCARD in mapping:
            return cls(mapping[WILDCARD], mapping, "sender_lists")
        return cls(opt_out_list, mapping)

    def list_for(self, sender: str) -> str:
        """The list a check of ``sender`` reads (``*``: the default list)."""
        return self.explicit.get(sender, self.default)

    @property
    def in_use(self) -> tuple[str, ...]:
        """Every list the mapping names, the default first, each once."""
        return tuple(dict.fromkeys([self.default, *sorted(set(self.explicit.values()))]))

    def lists_to_write(self, sender: str) -> tuple[str, ...]:
        """Where an add or remove for ``sender`` goes: ``*`` means every sender, every list."""
        return self.in_use if sender == WILDCARD else (self.list_for(sender),)

    def senders_of(self, name: str) -> tuple[str, ...]:
        """The senders a record of list ``name`` is reported under, in a listing of all."""
        named = sorted(sender for sender, listed in self.explicit.items() if listed == name)
        return (*named, WILDCARD) if name == self.default else tuple(named)

    def plan(self, sender: str | None) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The lists a listing reads, each with the senders its records are reported under."""
        if sender is not None:
            return ((self.list_for(sender), (sender,)),)
        return tuple((name, self.senders_of(name)) for name in self.in_use)

    def setting_of(self, name: str) -> str:
        """The setting that put list ``name`` in use, for an error that points at it."""
        return "sender_lists" if name in self.explicit.values() else self.default_setting
