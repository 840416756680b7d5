# Lab 5, question 2: the expected success rate of voting.
# P(doughnut) = 0.15 + 0.85 * (1/99): the bot's sweet tooth, plus a uniform pick that happens to be the doughnut.
p_doughnut = 0.15 + 0.85 / 99
print(f"P(doughnut vote) = {p_doughnut:.3f} -> expected voting success {1 - p_doughnut:.1%}")
