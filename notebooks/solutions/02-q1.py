# Lab 2, question 1: why is ACTUAL_RPS about twice EFFECTIVE_RPS after the retries?
# Each attempt fails with probability p = 0.5 and the proxy retries until one succeeds (the budget allows it at
# these rates), so a request takes 1 / (1 - p) = 2 attempts on average: twice as many actual requests.
table = mesh.routes("deploy/books", namespace="booksapp", to="svc/authors", wide=True)  # noqa: F821 - from the lab
head = table.set_index("ROUTE").loc["HEAD /authors/{id}.json"]
p = 1 - head["ACTUAL_SUCCESS"]
print(f"ACTUAL/EFFECTIVE = {head['ACTUAL_RPS'] / head['EFFECTIVE_RPS']:.2f}; "
      f"expected 1/(1-p) = {1 / (1 - p):.2f} with p = {p:.0%}")
