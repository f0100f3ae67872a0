"""
What the French DMP requires of an ITI-41 Document Source beyond plain XDS.b:
the signed VIHF SAML assertion in a WS-Security header (:mod:`xds.dmp.vihf`),
the XAdES signature of the submission set (:mod:`xds.dmp.xades`), the
French value sets and the qualified-INS rule (:mod:`xds.dmp.values`,
:mod:`xds.dmp.ins`), put together by :func:`xds.dmp.prepare.prepare_for_dmp`,
whose credentials and context a destination reads with :mod:`xds.dmp.settings`.

test-case-name: tests.xds.dmp.test_prepare
"""
