"""Campaigns: template broadcasts to an audience, their states, variables, schedule, cost and funnel.

Pure rules of the business; the API stores campaigns, the stream processors in ``streams/`` expand
and account for them, and the dispatcher sends their messages.
"""
