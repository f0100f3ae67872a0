"""
The ``identity:`` sections: the territory's patient index in engine.yaml, and a channel's
``identity:`` step, validated with the file and line of each mistake.

engine.yaml says which identifier domains the index knows (each an assigning authority:
CX.4.1 namespace, CX.4.2 OID, CX.5 type), which of them the ``rewrite-pid3`` of a step means
by ``local``, and how the matcher scores (thresholds in bits, :class:`MatchModel`)::

    identity:
      domains:
        - {namespace: HOPA, oid: 1.2.250.1.999.1.1, type: PI}
      target: HOPA
      matching: {upper: 18, lower: 12, margin: 6}

The INS domains (INS-NIR, INS-NIA and their test and demo OIDs) are always known and cannot
be declared again. A channel then writes::

    identity:
      feed: true                    # ADT events maintain the index (ITI-8)
      resolve: true                 # other messages: their patient is resolved (default)
      rewrite-pid3: INS-then-local  # or a namespace, or INS-then-<namespace>, or a list
      queries: true                 # answer QBP^Q23 (PIX) and QBP^Q22 (PDQ): after-processing
      query-limit: 50               # most persons in one RSP^K22 page

A step's domain names are checked against engine.yaml once every file is read
(:func:`check_identity_steps`), each at its own line.

test-case-name: tests.config.test_identity_config
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from engine.config.schema import Problems, Section, Where, at_least, key_position, item_position
from engine.config.yamlsource import YAMLMapping
from engine.interfaces import OptionSpec
from identity.matching.model import InvalidModel, MatchModel
from identity.model import INS_DOMAINS, IdentifierDomain

INS = "INS"  # in rewrite-pid3: the person's qualified INS first
LOCAL = "local"  # in rewrite-pid3: engine.yaml's ``identity.target``
_THEN = "-then-"
DEFAULT_QUERY_LIMIT = 50
_STEP_FLAGS = ("resolve", "feed", "keep-other-identifiers", "queries", "query-limit")

DOMAIN_SECTION = Section(
    (OptionSpec("namespace", "str", required=True, help="CX.4.1, the name steps use"),
     OptionSpec("oid", "str", required=True, help="CX.4.2, the assigning authority's OID"),
     OptionSpec("type", "str", default="PI", help="CX.5, the identifier type code")))
MATCHING_SECTION = Section(
    (OptionSpec("upper", "float", help="score (bits) at or above which a newcomer is linked"),
     OptionSpec("lower", "float", help="score below which a newcomer is a new person"),
     OptionSpec("margin", "float", help="how far the best must lead the second to link"),
     OptionSpec("frequency_floor", "float"), OptionSpec("frequency_prior", "float")))
IDENTITY_SECTION = Section(
    (OptionSpec("domains", "list", default=[], help="the identifier domains the index knows"),
     OptionSpec("target", "str", help="the namespace rewrite-pid3 means by 'local'"),
     OptionSpec("matching", "mapping", default={}, help="the matcher's thresholds")),
    nested={"domains": DOMAIN_SECTION, "matching": MATCHING_SECTION})
STEP_SECTION = Section(
    (OptionSpec("resolve", "bool", default=True,
                help="resolve the patient of every message against the index"),
     OptionSpec("feed", "bool", default=False,
                help="ADT A01/A04/A05/A08/A28/A31/A40/A24/A37/A47 maintain the index"),
     OptionSpec("rewrite-pid3", "str",
                help="INS-then-local, a namespace, or INS-then-<namespace>"),
     OptionSpec("keep-other-identifiers", "bool", default=False,
                help="rewrite-pid3 keeps the identifiers of other domains after the target's"),
     OptionSpec("queries", "bool", default=False,
                help="answer PIX (QBP^Q23) and PDQ (QBP^Q22) queries; needs after-processing"),
     OptionSpec("query-limit", "int", default=DEFAULT_QUERY_LIMIT,
                help="most persons in one RSP^K22 page")),
    checks={"query-limit": at_least(1)})


@dataclass(frozen=True)
class IdentityConfig:
    """engine.yaml's ``identity:``: the known domains, the default target, the model."""

    domains: tuple[IdentifierDomain, ...] = ()
    target: IdentifierDomain | None = None
    model: MatchModel = MatchModel()

    def named(self, namespace: str) -> IdentifierDomain | None:
        """The declared or INS domain whose namespace is ``namespace`` (case as written)."""
        return next((d for d in (*self.domains, *INS_DOMAINS) if d.namespace == namespace), None)


@dataclass(frozen=True)
class IdentityStepConfig:
    """A channel's ``identity:`` step as written; its domain names are resolved at wiring."""

    resolve: bool = True
    feed: bool = False
    ins_first: bool = False
    targets: tuple[str, ...] = ()  # namespaces, or LOCAL
    keep_others: bool = False
    queries: bool = False
    query_limit: int = DEFAULT_QUERY_LIMIT
    where: Any = None  # the Where of rewrite-pid3, for check_identity_steps


def identity_config(root: YAMLMapping, values: dict | None, where: Where,
                    problems: Problems) -> IdentityConfig:
    """engine.yaml's ``identity:`` section (the default one when absent or broken)."""
    if not values:
        return IdentityConfig()
    here = where.child("identity", root.key_position("identity"))
    raw = root.get("identity")
    domains = _domains(values["domains"] or [], raw.get("domains"),
                       here.child("domains", key_position(raw, "domains")), problems)
    config = IdentityConfig(tuple(domains))
    target = None
    if values["target"] is not None:
        target = config.named(values["target"])
        if target is None:
            problems.add(here.child("target", key_position(raw, "target")),
                         f"unknown domain {values['target']!r}; {_known(config)}")
    matching = {k: v for k, v in (values["matching"] or {}).items() if v is not None}
    try:
        model = MatchModel.from_mapping(matching)
    except InvalidModel as error:
        problems.add(here.child("matching", key_position(raw, "matching")), str(error))
        model = MatchModel()
    return IdentityConfig(config.domains, target, model)


def _domains(items: list, raw: Any, where: Where, problems: Problems) -> list[IdentifierDomain]:
    """The declared domains; a bad OID, an INS OID or a namespace or OID given twice is refused."""
    found: list[IdentifierDomain] = []
    ins = {d.oid: d.namespace for d in INS_DOMAINS}
    for index, item in enumerate(items):
        if not item or None in (item["namespace"], item["oid"]):
            continue  # validate_section has said why
        here = where.item(index, item_position(raw, index))
        try:
            domain = IdentifierDomain(item["oid"], item["namespace"], item["type"] or "PI")
        except ValueError as error:
            problems.add(here.child("oid"), str(error))
            continue
        if domain.oid in ins:
            problems.add(here.child("oid"), f"{domain.oid} is the built-in {ins[domain.oid]} "
                                            "domain: INS domains are always known")
        elif any(d.oid == domain.oid for d in found):
            problems.add(here.child("oid"), f"OID {domain.oid} is declared twice")
        elif any(d.namespace == domain.namespace for d in found):
            problems.add(here.child("namespace"),
                         f"namespace {domain.namespace!r} is declared twice")
        else:
            found.append(domain)
    return found


def identity_step(root: YAMLMapping, values: dict | None, where: Where,
                  problems: Problems) -> IdentityStepConfig | None:
    """A channel's ``identity:`` step, or None when it has none (or it is broken)."""
    if not values:
        return None  # absent, or validate_section has reported why
    raw = root.get("identity")
    here = where.child("identity", root.key_position("identity"))
    rewrite_at = here.child("rewrite-pid3", key_position(raw, "rewrite-pid3"))
    ins_first, targets = parse_rewrite(values.get("rewrite-pid3"), rewrite_at, problems)
    if values["queries"]:
        response = root.get("response")
        mode = response.get("mode") if isinstance(response, YAMLMapping) else None
        if mode != "after-processing":
            problems.add(here.child("queries", key_position(raw, "queries")),
                         "queries are answered once the index has been asked: the channel "
                         "needs response: {mode: after-processing}")
    if any(values[k] is None for k in _STEP_FLAGS):
        return None  # validate_section has reported why
    if not (values["resolve"] or values["feed"] or values["queries"] or targets or ins_first):
        problems.add(here, "the step does nothing: set resolve, feed, queries or rewrite-pid3")
    return IdentityStepConfig(values["resolve"], values["feed"], ins_first, targets,
                              values["keep-other-identifiers"], values["queries"],
                              values["query-limit"], rewrite_at)


def parse_rewrite(text: str | None, where: Where,
                  problems: Problems) -> tuple[bool, tuple[str, ...]]:
    """(INS first, target names) of ``rewrite-pid3``: ``INS``, ``INS-then-X``, ``X``,
    ``X`` being ``local`` or a namespace; several namespaces separated by commas."""
    if text is None:
        return False, ()
    ins_first, rest = False, text.strip()
    if rest == INS:
        return True, ()
    if rest.startswith(INS + _THEN):
        ins_first, rest = True, rest[len(INS + _THEN):]
    names = tuple(name.strip() for name in rest.split(","))
    if not all(names):
        problems.add(where, f"expected INS-then-local, a namespace or INS-then-<namespace>, "
                            f"not {text!r}")
        return False, ()
    return ins_first, names


def check_identity_steps(config: IdentityConfig, steps: Sequence[IdentityStepConfig | None],
                         problems: Problems) -> None:
    """Every namespace a step's ``rewrite-pid3`` names is a known domain (``local``: the
    engine has a ``target``)."""
    for step in steps:
        for name in step.targets if step is not None else ():
            if name == LOCAL and config.target is None:
                problems.add(step.where, "rewrite-pid3 names 'local' but engine.yaml's "
                                         "identity: section has no target")
            elif name != LOCAL and config.named(name) is None:
                problems.add(step.where, f"rewrite-pid3: unknown domain {name!r}; "
                                         f"{_known(config)}")


def target_domains(config: IdentityConfig, step: IdentityStepConfig) -> tuple[IdentifierDomain, ...]:
    """The domains ``step`` rewrites PID-3 into, in order (names checked at load)."""
    found = [config.target if name == LOCAL else config.named(name) for name in step.targets]
    return tuple(domain for domain in found if domain is not None)


def _known(config: IdentityConfig) -> str:
    names = [d.namespace for d in config.domains]
    return f"the declared domains are {', '.join(names)}" if names else (
        "engine.yaml's identity: section declares no domain")


__all__ = ["IDENTITY_SECTION", "INS", "LOCAL", "STEP_SECTION", "IdentityConfig",
           "IdentityStepConfig", "check_identity_steps", "identity_config", "identity_step",
           "parse_rewrite", "target_domains"]
