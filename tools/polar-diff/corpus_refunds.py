"""Cases for POST /v1/refunds/ and GET /v1/refunds/.

A case is a dict: name (unique; known differences name it), method, path (str with templates,
or raw bytes), auth (a seeded token's key, default "a_rw"; None for no Authorization header),
headers [(name, value)], json (an object) or body (str with templates, or raw bytes),
content_type (default application/json when there is a body; None for no header), tags.
Templates: {{order.NAME}}, {{sub.NAME}}, {{customer.a0}}, {{org.a}}, {{token.a_rw}},
{{refund.CASE}} (the refund an earlier case created), with |upper for upper case.

Order matters: cases run in this order on both sides, and a 201 changes the order's counters.
A request that one side is known to serve and the other to refuse (bare path, doubled
slash, Polar-Version 2027-01, whitespace in Authorization...) must not be able to create a
refund, or the two sides would drift apart: those use GET or name an order that does not
exist.
"""
import json
import random

P = "/v1/refunds/"
UNKNOWN = "5a1c5d3e-9b1f-4c43-8a4e-2f0d6c1b7e90"   # a uuid4 no one has
UUID_V1 = "3fa85f64-5717-1562-b3fc-2c963f66afa6"
NAMED_IDS = {"unknown": UNKNOWN, "uuid_v1": UUID_V1}
REASONS = ["duplicate", "fraudulent", "customer_request", "service_disruption",
           "satisfaction_guarantee", "other"]


def post(name, json_=None, body=None, **kw):
    case = {"name": name, "method": "POST", "path": P, **kw}
    if json_ is not None:
        case["json"] = json_
    if body is not None:
        case["body"] = body
    return case


def get(name, query="", **kw):
    return {"name": name, "method": "GET", "path": P + (("?" + query) if query else ""), **kw}


def refund(order, amount, reason="customer_request", **extra):
    return {"order_id": "{{order.%s}}" % order, "reason": reason, "amount": amount, **extra}


def cases(spec):
    c = []
    # --- valid refunds, in an order that walks through Polar's own worked examples ----------
    c += [post("create.taxed.1110", refund("taxed", 1110)),
          post("create.taxed.993", refund("taxed", 993, "duplicate")),
          post("create.taxed.5887.meta", refund("taxed", 5887, "other", comment="hello",
                                                metadata={"k": "v", "n": 1, "f": 1.5, "b": True})),
          post("create.taxed.over.2001", refund("taxed", 2001)),
          post("create.taxed.rest.2000", refund("taxed", 2000, "satisfaction_guarantee")),
          post("create.taxed.refunded_already", refund("taxed", 1)),
          post("create.taxed.refunded_already.huge", refund("taxed", 10 ** 9)),
          # Polar ignores Idempotency-Key; a well-formed one changes nothing on a first request
          post("idempotency.key.refunded_already", refund("taxed", 1),
               headers=[("Idempotency-Key", "polar-diff-1")]),
          post("idempotency.key.too_long", refund("taxed", 1),
               headers=[("Idempotency-Key", "k" * 256)], tags=["idempotency-key"]),
          post("create.untaxed.1000", refund("untaxed", 1000, "fraudulent")),
          post("create.untaxed.amount_string", refund("untaxed", "10")),
          post("create.untaxed.amount_float_integral", refund("untaxed", 11.0)),
          post("create.untaxed.amount_true", refund("untaxed", True)),
          post("create.untaxed.amount_exp", body='{"order_id": "{{order.untaxed}}", "reason": "other", "amount": 1.2e1}'),
          post("create.untaxed.revoke_true", refund("untaxed", 13, revoke_benefits=True)),
          post("create.untaxed.revoke_yes", refund("untaxed", 14, revoke_benefits="yes")),
          post("create.untaxed.revoke_1", refund("untaxed", 15, revoke_benefits=1)),
          post("create.untaxed.comment_null", refund("untaxed", 16, comment=None)),
          post("create.untaxed.comment_long", refund("untaxed", 17, comment="x" * 10000)),
          post("create.untaxed.extra_fields", refund("untaxed", 18, currency="eur", foo={"a": 1})),
          post("create.untaxed.duplicate_key",
               body='{"order_id": "{{order.untaxed}}", "reason": "other", "amount": 19, "amount": 20}'),
          post("create.untaxed.order_id_upper",
               body='{"order_id": "{{order.untaxed|upper}}", "reason": "other", "amount": 21}'),
          post("create.untaxed.over", refund("untaxed", 5000)),
          post("create.full.1200", refund("full", 1200, "service_disruption")),
          post("create.full.again", refund("full", 1)),
          post("create.quarter.300.a", refund("quarter", 300)),
          post("create.quarter.300.b", refund("quarter", 301)),
          post("create.tiny.1", refund("tiny", 1)),
          post("create.tiny.2", refund("tiny", 2)),
          post("create.sub.revoke", refund("sub", 500, revoke_benefits=True)),
          post("create.sub.500", refund("sub", 500)),
          post("create.sub.revoke_false", refund("sub", 501, revoke_benefits=False)),
          post("create.eur.1000", refund("eur", 1000)),
          post("create.eur.1", refund("eur", 1, "duplicate")),
          post("create.b.own_token", refund("b", 100), auth="b_rw"),
          post("create.b.with_a_token", refund("b", 100)),
          post("create.a.with_b_token", refund("untaxed", 100), auth="b_rw")]
    # --- metadata -------------------------------------------------------------------------
    c += [post("meta.bigint", refund("meta", 22, metadata={"big": 100000000000000000000})),
          post("meta.neg_bigint", refund("meta", 23, metadata={"big": -100000000000000000000})),
          post("meta.int64_max", refund("meta", 24, metadata={"m": 9223372036854775807, "u": 18446744073709551615})),
          post("meta.floats", refund("meta", 25, metadata={"f": 0.1, "e": 1e-7, "g": 1e300, "neg": -5, "t": False})),
          post("meta.float_exp_text", body='{"order_id": "{{order.meta}}", "reason": "other", "amount": 26, "metadata": {"a": 1E+2, "b": 2.50}}'),
          post("meta.50_keys", refund("meta", 27, metadata={f"k{i}": i for i in range(50)})),
          post("meta.51_keys", refund("meta", 28, metadata={f"k{i}": i for i in range(51)})),
          post("meta.key_40", refund("meta", 29, metadata={"k" * 40: "v"})),
          post("meta.key_41", refund("meta", 30, metadata={"k" * 41: "v"})),
          post("meta.value_500", refund("meta", 31, metadata={"k": "v" * 500})),
          post("meta.value_501", refund("meta", 32, metadata={"k": "v" * 501})),
          post("meta.key_empty", refund("meta", 33, metadata={"": "v"})),
          post("meta.value_empty", refund("meta", 34, metadata={"k": ""})),
          post("meta.value_null", refund("meta", 35, metadata={"k": None})),
          post("meta.value_list", refund("meta", 36, metadata={"k": [1]})),
          post("meta.value_object", refund("meta", 37, metadata={"k": {"a": 1}})),
          post("meta.list", refund("meta", 38, metadata=[1, 2])),
          post("meta.string", refund("meta", 39, metadata="x")),
          post("meta.null", refund("meta", 40, metadata=None)),
          post("meta.unicode", refund("meta", 41, metadata={"é": "ü€😀", "ключ": "значение"})),
          post("meta.value_nul", refund("meta", 42, metadata={"k": "a\u0000b"})),
          post("meta.key_nul", refund("meta", 43, metadata={"a\u0000": "b"})),
          post("meta.multi_error", refund("meta", 44, metadata={"k" * 41: "v" * 501, "": None}))]
    # --- invalid bodies ---------------------------------------------------------------------
    c += [post("body.none"),
          post("body.none.content_length_0", body="", content_type=None),
          post("body.empty_string", body=""),
          post("body.empty_object", {}),
          post("body.invalid_json", body="{"),
          post("body.trailing_comma", body='{"order_id": "{{order.untaxed}}", "reason": "other", "amount": 1,}'),
          post("body.single_quotes", body="{'amount': 1}"),
          post("body.array", [1]),
          post("body.string", "x"),
          post("body.number", body="5"),
          post("body.null", body="null"),
          post("body.garbage_after", body='{"amount": 1} x'),
          post("body.invalid_utf8", body=b'{"order_id": "\xff\xfe", "reason": "other", "amount": 1}'),
          post("body.bom_utf8", body=b"\xef\xbb\xbf" + b'{"order_id": "' + UNKNOWN.encode() + b'", "reason": "other", "amount": 1}'),
          post("body.utf16", body=json.dumps(refund("untaxed", 1)).replace("{{order.untaxed}}", UNKNOWN).encode("utf-16"), tags=["utf16"]),
          post("body.nan_amount", body='{"order_id": "%s", "reason": "other", "amount": NaN}' % UNKNOWN, tags=["json-nan"]),
          post("body.infinity_amount", body='{"order_id": "%s", "reason": "other", "amount": Infinity}' % UNKNOWN, tags=["json-nan"]),
          post("body.neg_infinity_amount", body='{"order_id": "%s", "reason": "other", "amount": -Infinity}' % UNKNOWN, tags=["json-nan"]),
          post("body.exp_overflow_amount", body='{"order_id": "%s", "reason": "other", "amount": 1e400}' % UNKNOWN, tags=["exp-overflow"]),
          post("body.lone_surrogate", body='{"order_id": "%s", "reason": "\\ud800", "amount": 1}' % UNKNOWN, tags=["lone-surrogate"]),
          post("body.escaped_unicode_ok", body='{"order_id": "%s", "reason": "\\u00e9\\ud83d\\ude00", "amount": 1}' % UNKNOWN),
          post("body.deep_nesting", body='{"order_id": "%s", "reason": "other", "amount": 1, "x": %s}' % (UNKNOWN, "[" * 100 + "]" * 100))]
    # --- order_id ---------------------------------------------------------------------------
    c += [post("order_id.missing", {"reason": "other", "amount": 1}),
          post("order_id.null", {"order_id": None, "reason": "other", "amount": 1}),
          post("order_id.int", {"order_id": 5, "reason": "other", "amount": 1}),
          post("order_id.abc", {"order_id": "abc", "reason": "other", "amount": 1}),
          post("order_id.empty", {"order_id": "", "reason": "other", "amount": 1}),
          post("order_id.v1", {"order_id": UUID_V1, "reason": "other", "amount": 1}),
          post("order_id.unknown", {"order_id": UNKNOWN, "reason": "other", "amount": 1}),
          post("order_id.unknown_upper", {"order_id": UNKNOWN.upper(), "reason": "other", "amount": 1}),
          post("order_id.simple_format", {"order_id": UNKNOWN.replace("-", ""), "reason": "other", "amount": 1}),
          post("order_id.braces", {"order_id": "{" + UNKNOWN + "}", "reason": "other", "amount": 1}),
          post("order_id.urn", {"order_id": "urn:uuid:" + UNKNOWN, "reason": "other", "amount": 1}),
          post("order_id.nil", {"order_id": "00000000-0000-0000-0000-000000000000", "reason": "other", "amount": 1}),
          post("order_id.bad_char", {"order_id": UNKNOWN[:-1] + "g", "reason": "other", "amount": 1}),
          post("order_id.too_long", {"order_id": UNKNOWN + "0", "reason": "other", "amount": 1}),
          post("order_id.list", {"order_id": [UNKNOWN], "reason": "other", "amount": 1}),
          post("order_id.other_org", refund("b", 1))]
    # --- reason -----------------------------------------------------------------------------
    c += [post("reason.missing", {"order_id": UNKNOWN, "amount": 1}),
          post("reason.null", {"order_id": UNKNOWN, "reason": None, "amount": 1}),
          post("reason.invalid", {"order_id": UNKNOWN, "reason": "foo", "amount": 1}),
          post("reason.dispute_prevention", {"order_id": UNKNOWN, "reason": "dispute_prevention", "amount": 1}),
          post("reason.upper", {"order_id": UNKNOWN, "reason": "DUPLICATE", "amount": 1}),
          post("reason.int", {"order_id": UNKNOWN, "reason": 5, "amount": 1}),
          post("reason.empty", {"order_id": UNKNOWN, "reason": "", "amount": 1})]
    c += [post(f"reason.each.{r}", refund("untaxed", 100 + i, r)) for i, r in enumerate(REASONS)]
    # --- amount -----------------------------------------------------------------------------
    for label, amount in [("zero", 0), ("negative", -1), ("huge_1e30", 10 ** 30), ("int64_max", 2 ** 63 - 1),
                          ("int64_over", 2 ** 63), ("uint64_over", 2 ** 64), ("float", 10.5), ("string", "abc"),
                          ("string_float", "10.5"), ("string_empty", ""), ("null", None), ("list", [1]),
                          ("object", {}), ("false", False), ("neg_zero_float", -0.0), ("tiny_float", 1e-9),
                          ("string_spaces", " 5 "), ("string_plus", "+5"), ("string_exp", "1e3")]:
        c.append(post(f"amount.{label}", {"order_id": UNKNOWN, "reason": "other", "amount": amount}))
    c += [post("amount.missing", {"order_id": UNKNOWN, "reason": "other"}),
          post("amount.over_refund_huge", refund("untaxed", 10 ** 30)),
          post("amount.over_refund_int64", refund("untaxed", 2 ** 63 - 1)),
          post("amount.exp_big_text", body='{"order_id": "%s", "reason": "other", "amount": 1e20}' % UNKNOWN),
          post("amount.all_invalid", {"order_id": "x", "reason": "y", "amount": 0, "revoke_benefits": "z", "comment": 5})]
    # --- comment, revoke_benefits -----------------------------------------------------------
    c += [post("comment.int", refund("untaxed", 1, comment=5)),
          post("comment.nul", refund("untaxed", 1, comment="a\u0000b")),
          post("comment.object", refund("untaxed", 1, comment={})),
          post("revoke.maybe", refund("untaxed", 1, revoke_benefits="maybe")),
          post("revoke.two", refund("untaxed", 1, revoke_benefits=2)),
          post("revoke.null", refund("untaxed", 1, revoke_benefits=None)),
          post("revoke.list", refund("untaxed", 1, revoke_benefits=[]))]
    # --- auth (POSTs that would create use an unknown order, so they cannot drift) ----------
    bad = {"order_id": UNKNOWN, "reason": "other", "amount": 1}
    c += [post("auth.none.valid_body", refund("untaxed", 1), auth=None),
          post("auth.none.no_body", auth=None),
          post("auth.none.invalid_json", body="{", auth=None, tags=["noauth", "body-syntax"]),
          post("auth.none.invalid_fields", {"amount": 0}, auth=None),
          post("auth.bearer_no_token", bad, auth=None, headers=[("Authorization", "Bearer")]),
          post("auth.bearer_space_no_token", bad, auth=None, headers=[("Authorization", "Bearer ")]),
          post("auth.bearer_two_spaces", bad, auth=None, headers=[("Authorization", "Bearer  {{token.a_rw}}")]),
          post("auth.bearer_tab", bad, auth=None, headers=[("Authorization", "Bearer\t{{token.a_rw}}")]),
          post("auth.lowercase_scheme", bad, auth=None, headers=[("Authorization", "bearer {{token.a_rw}}")]),
          post("auth.uppercase_scheme", bad, auth=None, headers=[("Authorization", "BEARER {{token.a_rw}}")]),
          post("auth.basic", bad, auth=None, headers=[("Authorization", "Basic dXNlcjpwYXNz")]),
          post("auth.token_scheme", bad, auth=None, headers=[("Authorization", "Token {{token.a_rw}}")]),
          post("auth.no_scheme", bad, auth=None, headers=[("Authorization", "{{token.a_rw}}")]),
          post("auth.empty_header", bad, auth=None, headers=[("Authorization", "")]),
          post("auth.unknown_oat", bad, auth=None, headers=[("Authorization", "Bearer polar_oat_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]),
          post("auth.unknown_pat", bad, auth=None, headers=[("Authorization", "Bearer polar_pat_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]),
          post("auth.unknown_cst", bad, auth=None, headers=[("Authorization", "Bearer polar_cst_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]),
          post("auth.unknown_plain", bad, auth=None, headers=[("Authorization", "Bearer abc")]),
          post("auth.token_with_space", bad, auth=None, headers=[("Authorization", "Bearer {{token.a_rw}} x")]),
          post("auth.token_trailing_space", bad, auth=None, headers=[("Authorization", "Bearer {{token.a_rw}}  ")]),
          post("auth.two_headers", bad, auth=None, headers=[("Authorization", "Bearer {{token.a_rw}}"), ("Authorization", "Bearer abc")]),
          post("auth.read_only.valid", refund("untaxed", 1), auth="a_ro"),
          post("auth.read_only.invalid_body", body="{", auth="a_ro", tags=["read-only", "body-syntax"]),
          post("auth.read_only.no_body", auth="a_ro"),
          get("auth.get.none", auth=None),
          get("auth.get.bearer_no_token", auth=None, headers=[("Authorization", "Bearer")]),
          get("auth.get.bearer_two_spaces", auth=None, headers=[("Authorization", "Bearer  {{token.a_rw}}")]),
          get("auth.get.bearer_tab", auth=None, headers=[("Authorization", "Bearer\t{{token.a_rw}}")]),
          get("auth.get.unknown", auth=None, headers=[("Authorization", "Bearer polar_oat_nope")]),
          get("auth.get.read_only", auth="a_ro"),
          get("auth.get.b", auth="b_rw")]
    # --- list: filters, paging, sorting -----------------------------------------------------
    c += [get("list.default"),
          get("list.empty_query", "")]
    c[-1]["path"] = P + "?"
    for label, query in [
        ("limit_1", "limit=1"), ("limit_2_page_2", "limit=2&page=2"), ("limit_100", "limit=100"),
        ("limit_101", "limit=101"), ("limit_1000", "limit=1000"), ("limit_0", "limit=0"), ("limit_neg", "limit=-1"),
        ("limit_abc", "limit=abc"), ("limit_float", "limit=1.5"), ("limit_float_integral", "limit=2.0"),
        ("limit_empty", "limit="), ("limit_huge", "limit=9223372036854775808"), ("limit_plus", "limit=%2B3"),
        ("limit_space", "limit=%203"), ("page_2", "page=2"), ("page_past_end", "page=100"), ("page_0", "page=0"),
        ("page_neg", "page=-1"), ("page_2e31", "page=2147483648"), ("page_2e53", "page=9007199254740993"),
        ("page_empty", "page="), ("page_twice", "page=1&page=2"), ("limit_twice", "limit=1&limit=3"),
        ("sort_created", "sorting=created_at"), ("sort_created_desc", "sorting=-created_at"),
        ("sort_amount", "sorting=amount"), ("sort_amount_desc", "sorting=-amount"),
        ("sort_two", "sorting=-amount&sorting=created_at"), ("sort_invalid", "sorting=foo"),
        ("sort_id", "sorting=id"), ("sort_empty", "sorting="), ("sort_comma", "sorting=amount,-created_at"),
        ("sort_plus", "sorting=%2Bamount"), ("sort_invalid_two", "sorting=foo&sorting=bar"),
        ("order_id", "order_id={{order.taxed}}"), ("order_id_two", "order_id={{order.taxed}}&order_id={{order.untaxed}}"),
        ("order_id_comma", "order_id={{order.taxed}},{{order.untaxed}}"), ("order_id_abc", "order_id=abc"),
        ("order_id_v1", "order_id=" + UUID_V1), ("order_id_unknown", "order_id=" + UNKNOWN),
        ("order_id_upper", "order_id={{order.taxed|upper}}"), ("order_id_empty", "order_id="),
        ("order_id_other_org", "order_id={{order.b}}"), ("order_id_bracket", "order_id[]={{order.taxed}}"),
        ("customer_id", "customer_id={{customer.a0}}"), ("customer_id_b", "customer_id={{customer.b0}}"),
        ("customer_id_two", "customer_id={{customer.a1}}&customer_id={{customer.a2}}"),
        ("external_customer_id", "external_customer_id=ext_a0"),
        ("external_customer_id_two", "external_customer_id=ext_a0&external_customer_id=ext_a2"),
        ("external_customer_id_unknown", "external_customer_id=nope"),
        ("external_customer_id_empty", "external_customer_id="),
        ("external_customer_id_b", "external_customer_id=ext_b0"),
        ("external_customer_id_utf8", "external_customer_id=%C3%A9"),
        ("subscription_id", "subscription_id={{sub.sub}}"), ("subscription_id_abc", "subscription_id=abc"),
        ("organization_id", "organization_id={{org.a}}"), ("organization_id_b", "organization_id={{org.b}}"),
        ("organization_id_both", "organization_id={{org.a}}&organization_id={{org.b}}"),
        ("id", "id={{refund.create.taxed.1110}}"),
        ("id_two", "id={{refund.create.taxed.1110}}&id={{refund.create.eur.1000}}"),
        ("id_abc", "id=abc"),
        ("succeeded_true", "succeeded=true"), ("succeeded_false", "succeeded=false"),
        ("succeeded_TRUE", "succeeded=TRUE"), ("succeeded_yes", "succeeded=yes"), ("succeeded_0", "succeeded=0"),
        ("succeeded_on", "succeeded=on"), ("succeeded_t", "succeeded=t"), ("succeeded_maybe", "succeeded=maybe"),
        ("succeeded_empty", "succeeded="), ("succeeded_twice", "succeeded=true&succeeded=false"),
        ("unknown_param", "foo=bar"), ("combined", "customer_id={{customer.a0}}&succeeded=true&sorting=-amount&limit=2&page=2"),
        ("plus_in_value", "external_customer_id=ext+a0"), ("percent_bad", "external_customer_id=%zz"),
        ("no_value", "limit"), ("many_params", "&".join(f"x{i}=1" for i in range(200))),
    ]:
        c.append(get("list." + label, query))
    c += [get("list.page_int64_max", "page=9223372036854775807", tags=["page-huge"]),
          get("list.page_int64_over", "page=9223372036854775808", tags=["page-huge"]),
          get("list.page_1e30", "page=" + str(10 ** 30), tags=["page-huge"]),
          get("list.nul_in_query", "external_customer_id=a%00b", tags=["query-nul"]),
          get("list.nul_in_uuid_filter", "order_id=%00", tags=["query-nul"]),
          {"name": "list.raw_non_ascii", "method": "GET", "path": (P + "?external_customer_id=\u00e9").encode("utf-8"),
           "tags": ["raw-non-ascii"]},
          get("list.b", auth="b_rw"),
          get("list.b_sorted", "sorting=amount", auth="b_rw"),
          get("list.read_only", "limit=3", auth="a_ro")]
    # --- paths and methods ------------------------------------------------------------------
    c += [{"name": "path.bare.get", "path": "/v1/refunds"},
          {"name": "path.bare.get_query", "path": "/v1/refunds?limit=1"},
          post("path.bare.post", bad, path="/v1/refunds"),
          {"name": "path.double_slash_front", "path": "//v1/refunds/"},
          {"name": "path.double_slash_middle", "path": "/v1//refunds/"},
          {"name": "path.double_slash_end", "path": "/v1/refunds//"},
          post("path.double_slash.post", bad, path="//v1/refunds/"),
          {"name": "path.api_prefix", "path": "/api/v1/refunds/"},
          {"name": "path.upper", "path": "/V1/refunds/"},
          {"name": "path.singular", "path": "/v1/refund/"},
          {"name": "path.v1_root", "path": "/v1/"},
          {"name": "path.root", "path": "/"},
          {"name": "path.unknown_sub", "path": "/v1/refunds/" + UNKNOWN},
          {"name": "path.unknown_sub_noauth", "path": "/v1/refunds/" + UNKNOWN, "auth": None},
          {"name": "path.encoded_slash", "path": "/v1/refunds%2F"},
          {"name": "path.dot_segment", "path": "/v1/./refunds/"},
          {"name": "path.absolute_form", "path": "http://localhost/v1/refunds/"}]
    for method in ["PUT", "DELETE", "PATCH", "OPTIONS"]:
        c += [{"name": f"method.{method}", "method": method, "path": P},
              {"name": f"method.{method}.noauth", "method": method, "path": P, "auth": None},
              {"name": f"method.{method}.body", "method": method, "path": P, "json": bad},
              # Content-Length: 0, as most clients send for a body-less PUT/PATCH/DELETE.
              {"name": f"method.{method}.empty", "method": method, "path": P, "body": "", "content_type": None}]
    c += [{"name": "method.HEAD", "method": "HEAD", "path": P},
          {"name": "method.TRACE", "method": "TRACE", "path": P},
          {"name": "method.lowercase_get", "method": "get", "path": P},
          {"name": "method.OPTIONS.cors", "method": "OPTIONS", "path": P, "auth": None,
           "headers": [("Origin", "https://example.com"), ("Access-Control-Request-Method", "POST")]}]
    # --- headers ----------------------------------------------------------------------------
    c += [get("header.version_empty", headers=[("Polar-Version", "")]),
          get("header.version_2026_04", headers=[("Polar-Version", "2026-04")]),
          get("header.version_2025_01", headers=[("Polar-Version", "2025-01")]),
          get("header.version_2027_01", headers=[("Polar-Version", "2027-01")], tags=["version-2027"]),
          get("header.version_garbage", headers=[("Polar-Version", "garbage")]),
          get("header.version_spaces", headers=[("Polar-Version", " 2026-04 ")], tags=["header-trim"]),
          get("header.version_tab", headers=[("Polar-Version", "2026-04\t")], tags=["header-trim"]),
          post("header.version_empty.post", bad, headers=[("Polar-Version", "")]),
          post("header.ct_charset", bad, content_type="application/json; charset=utf-8"),
          post("header.ct_charset_latin1", bad, content_type="application/json; charset=latin-1"),
          post("header.ct_text", bad, content_type="text/plain"),
          post("header.ct_none", bad, content_type=None),
          post("header.ct_vnd", bad, content_type="application/vnd.api+json"),
          post("header.ct_upper", bad, content_type="APPLICATION/JSON"),
          post("header.ct_form", body="order_id=%s&reason=other&amount=1" % UNKNOWN,
               content_type="application/x-www-form-urlencoded"),
          post("header.ct_multipart", body="--x\r\n\r\n--x--\r\n", content_type="multipart/form-data; boundary=x"),
          post("header.ct_garbage", bad, content_type="garbage"),
          post("header.ct_spaces", bad, content_type=" application/json ", tags=["header-trim"]),
          post("header.ct_json_semicolon_space", bad, content_type="application/json ; charset=utf-8"),
          get("header.accept_xml", headers=[("Accept", "application/xml")]),
          get("header.accept_gzip", headers=[("Accept-Encoding", "gzip")]),
          post("header.body_over_10mib", {**bad, "comment": "x" * (10 * 1024 * 1024)}),
          post("header.chunked_body", bad, chunked=True),
          post("header.chunked_empty", body="", chunked=True),
          get("header.request_id", headers=[("X-Request-Id", "abc")]),
          get("header.origin", headers=[("Origin", "https://example.com")]),
          post("header.origin.post", bad, headers=[("Origin", "https://example.com")])]
    return c


# --- random mutations ------------------------------------------------------------------------
# Each value is (raw JSON text, tags). Tags are what known-differences.json can name.
VALUES = [
    ('0', []), ('-1', []), ('1', []), ('1.5', []), ('1.0', []), ('"1"', []), ('""', []), ('"abc"', []),
    ('null', []), ('true', []), ('false', []), ('[]', []), ('{}', []), ('[1, "a"]', []), ('{"a": 1}', []),
    ('100000000000000000000', []), ('-100000000000000000000', []), ('1e20', []), ('1E-5', []),
    ('9223372036854775807', []), ('9223372036854775808', []), ('"%s"' % UNKNOWN, []), ('"%s"' % UUID_V1, []),
    ('"{{order.mut_taxed}}"', []), ('"{{order.b}}"', []), ('"{{order.mut_sub|upper}}"', []),
    ('"duplicate"', []), ('"dispute_prevention"', []), ('"x\\u0000y"', []), ('"\\u00e9"', []),
    ('"' + "z" * 501 + '"', []), ('"yes"', []), ('"off"', []),
    ('NaN', ["json-nan"]), ('Infinity', ["json-nan"]), ('-Infinity', ["json-nan"]), ('1e999', ["exp-overflow"]),
    ('"\\udc00"', ["lone-surrogate"]),
]
FIELDS = ["order_id", "reason", "amount", "comment", "revoke_benefits", "metadata"]
BROKEN = [('{"amount": 1', ["body-syntax"]), ('{"amount": 1,}', ["body-syntax"]), ("{'a': 1}", ["body-syntax"]),
          ('{"amount": 01}', ["body-syntax"]), ('{"amount": .5}', ["body-syntax"]), ('{"a": tru}', ["body-syntax"]),
          ('[', ["body-syntax"]), ('{"amount": 1} {}', ["body-syntax"]), ('', []), ('   ', ["body-syntax"])]
QUERY_KEYS = ["limit", "page", "sorting", "order_id", "customer_id", "external_customer_id", "subscription_id",
              "organization_id", "id", "succeeded", "unknown"]
QUERY_VALUES = ["", "0", "1", "-1", "2", "10", "100", "101", "1.5", "abc", "true", "false", "no", "TRUE",
                "amount", "-amount", "created_at", "-created_at", "foo", UNKNOWN, UUID_V1, "{{order.mut_taxed}}",
                "{{order.taxed}}", "{{customer.a0}}", "{{customer.b0}}", "{{org.a}}", "{{org.b}}", "{{sub.sub}}",
                "ext_a0", "ext_b0", "%C3%A9", "a%20b", "2147483648"]


def mutations(spec, seed, count):
    rng = random.Random(seed)
    kinds = ["create" if rng.random() < 0.6 else "list" for _ in range(count)]
    # Lists first: they then see only the fixed corpus' refunds, so a create that one side
    # accepts and the other refuses cannot make every later list differ.
    out = [mutate_list(rng, i) for i, kind in enumerate(kinds) if kind == "list"]
    out += [mutate_create(rng, i) for i, kind in enumerate(kinds) if kind == "create"]
    return out


def mutate_create(rng, i):
    order = rng.choice(["mut_taxed", "mut_untaxed", "mut_sub"])
    fields = {"order_id": '"{{order.%s}}"' % order, "reason": json.dumps(rng.choice(REASONS)),
              "amount": str(rng.randint(1, 500))}
    if rng.random() < 0.3:
        fields["metadata"] = json.dumps({"k": rng.choice(["v", 1, 2.5, True])})
    if rng.random() < 0.2:
        fields["comment"] = '"c"'
    if rng.random() < 0.2 and order != "mut_sub":
        fields["revoke_benefits"] = "true"
    tags, what, auth = [], [], "a_rw"
    for _ in range(rng.choice([1, 1, 2])):
        op = rng.random()
        if op < 0.6:
            field = rng.choice(FIELDS)
            value, value_tags = rng.choice(VALUES)
            if field == "metadata" and rng.random() < 0.7:
                value = '{"m": %s}' % value
            fields[field] = value
            tags += value_tags
            what.append(f"{field}={value[:30]}")
        elif op < 0.8:
            field = rng.choice(FIELDS)
            fields.pop(field, None)
            what.append(f"-{field}")
        elif op < 0.9:
            value, value_tags = rng.choice(VALUES)
            fields[rng.choice(["extra", "currency", "id", "status"])] = value
            tags += value_tags
            what.append(f"+extra={value[:30]}")
        else:
            auth = rng.choice([None, "a_ro", "b_rw"])
            what.append(f"auth={auth}")
    body = "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"
    if rng.random() < 0.05:
        body, broken_tags = rng.choice(BROKEN)
        tags += broken_tags
        what.append("broken")
    if auth is None:
        tags.append("noauth")
    if auth == "a_ro":
        tags.append("read-only")
    case = post(f"mut.{i:03d}.create[{','.join(what)}]", body=body, auth=auth, tags=tags)
    return case


def mutate_list(rng, i):
    params = [("limit", str(rng.randint(1, 5)))]
    if rng.random() < 0.5:
        sorting = rng.choice(["amount", "-amount", "created_at", "-created_at"])
        params.append(("sorting", sorting))
        if sorting.endswith("amount"):
            # Polar breaks no ties: equal amounts on either side of a page boundary would
            # make the two pages differ by chance, so a second criterion orders them.
            params.append(("sorting", "created_at"))
    tags, what, auth = [], [], "a_rw"
    for _ in range(rng.choice([1, 1, 2, 3])):
        op = rng.random()
        if op < 0.8:
            key, value = rng.choice(QUERY_KEYS), rng.choice(QUERY_VALUES)
            if rng.random() < 0.5:
                params = [p for p in params if p[0] != key]
            params.append((key, value))
            what.append(f"{key}={value[:20]}")
        else:
            auth = rng.choice([None, "a_ro", "b_rw"])
            what.append(f"auth={auth}")
    query = "&".join(f"{k}={v}" for k, v in params)
    return get(f"mut.{i:03d}.list[{','.join(what)}]", query, auth=auth, tags=tags)
