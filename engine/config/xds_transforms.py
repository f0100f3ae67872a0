"""
The transforms that make XDS.b submissions, registered here because they need ``xds/``,
which ``mappings/`` must not import (tests/test_layering.py): ``mdm-to-xds`` (the document
an MDM^T02 carries, :mod:`xds.transforms.mdm`) and ``cda-to-xds`` (a CDA, made by
``oru-to-cda`` before it, whose header gives the DocumentEntry, :mod:`xds.cda.submission`).

Both take the channel's metadata settings (:mod:`xds.transforms.options`: source id, class,
format, facility and practice setting codes, confidentiality, language, repository id),
checked here at load, and make the submission form of :mod:`xds.transforms.payload`, which
an ``xds`` destination sends as it is.

test-case-name: tests.config.test_transforms
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from mappings.transforms.mdm import read_mdm
from mappings.transforms.registry import MessageTransform, TransformConfigError
from xds.cda.submission import submission_from_cda
from xds.transforms.mdm import MdmSubmission, SubmissionOptions, submission_from_mdm
from xds.transforms.options import MetadataOptionsError, metadata_options
from xds.transforms.payload import CDA_MEDIA_TYPE, SUBMISSION_MEDIA_TYPE, submission_payload

__all__ = ["XDS_TRANSFORMS"]


def _settings(name: str, options: Mapping[str, Any]) -> SubmissionOptions:
    try:
        return metadata_options(options)
    except MetadataOptionsError as error:
        raise TransformConfigError(f"transform {name!r}: {error}") from None


def _payload(made: MdmSubmission) -> bytes:
    return submission_payload(made.submission, made.documents)


def _mdm_to_xds(options: Mapping[str, Any], tables: Mapping) -> MessageTransform:
    settings = _settings("mdm-to-xds", options)
    return MessageTransform(
        "mdm-to-xds", SUBMISSION_MEDIA_TYPE,
        lambda message: _payload(submission_from_mdm(read_mdm(message), settings)))


def _cda_to_xds(options: Mapping[str, Any], tables: Mapping) -> MessageTransform:
    settings = _settings("cda-to-xds", options)
    return MessageTransform(
        "cda-to-xds", SUBMISSION_MEDIA_TYPE,
        lambda document: _payload(submission_from_cda(document, settings)),
        accepts=CDA_MEDIA_TYPE)


XDS_TRANSFORMS: dict[str, Callable[..., MessageTransform]] = {
    "mdm-to-xds": _mdm_to_xds, "cda-to-xds": _cda_to_xds}
