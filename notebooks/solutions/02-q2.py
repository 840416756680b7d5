# Lab 2, question 2: books succeeds 100% while authors still fails ~50%: how?
# The retries happen in books' outbound proxy. authors' inbound proxy counts every attempt it answers, failed
# ones included; books' app only sees the final answer of each request, which is a success.
stat = mesh.stat("deploy", namespace="booksapp")  # noqa: F821 - `mesh` comes from the lab notebook
sr = dict(zip(stat["NAME"], stat["SUCCESS"]))
head = mesh.routes("deploy/books", namespace="booksapp", to="svc/authors", wide=True).set_index("ROUTE").loc[  # noqa: F821
    "HEAD /authors/{id}.json"]
print(f"books (inbound) {sr['books']:.1%}; authors (inbound, every attempt) {sr['authors']:.1%}")
print(f"books' view of HEAD: effective {head['EFFECTIVE_SUCCESS']:.1%}, actual {head['ACTUAL_SUCCESS']:.1%}")
