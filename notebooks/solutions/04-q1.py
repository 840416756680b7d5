# Lab 4, question 1: why does books stay at 100% while webapp fails?
# The split happens in the clients' proxies: a diverted request goes from webapp's proxy straight to the error
# injector's pod, so books' pods (and their inbound proxies, which `stat deploy/books` reads) never see it.
rows = mesh.stat("deploy", namespace="booksapp", from_="deploy/webapp", window="5m")  # noqa: F821 - from the lab
print(labkit.cli_text(rows))  # noqa: F821 - `labkit` too
# (after the split was removed the error injector's row is gone: run this right after applying a split)
