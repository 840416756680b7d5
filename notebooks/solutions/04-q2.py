# Lab 4, question 2: why was authors a little below 100% during the HTTPRoute split only?
# authors calls books too: deleting an author first lists and deletes the author's books. Those calls were split
# like webapp's, and a 500 from the error injector fails the delete. The HTTPRoute reached every client's proxy
# at once; the SMI split lives in a ServiceProfile created while authors' proxy was already talking to books, and
# only webapp was restarted — so authors' proxy never used it.
frame = mesh.query('sum(increase(response_total{direction="outbound", namespace="booksapp", '  # noqa: F821
                   'dst_deployment="error-injector"}[1h])) by (deployment)')
print(frame)  # both webapp and authors sent requests to the error injector (authors: during the HTTPRoute split)
