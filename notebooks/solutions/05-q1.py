# Lab 5, question 1: why is web's success rate higher than voting's?
# web serves two kinds of request from vote-bot: /api/list (never fails) and /api/vote (fails when voting fails).
# Only half of web's requests can fail, so its success rate is about (1 + voting's) / 2.
stat = mesh.stat("deploy", namespace="emojivoto")  # noqa: F821 - `mesh` comes from the lab notebook
sr = dict(zip(stat["NAME"], stat["SUCCESS"]))
print(f"voting {sr['voting']:.1%}; (1 + voting) / 2 = {(1 + sr['voting']) / 2:.1%}; web measured {sr['web']:.1%}")
