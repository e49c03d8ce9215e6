"""The Slack edge: everything that talks to Slack's APIs lives here.

- ``connection``: the bot role's Socket Mode connection and start-up;
- ``listeners``: the bolt app, its listeners and what they do;
- ``directory``: channel look-ups and the checks on the channels settings name;
- ``notifier``: the ``Notifier`` that posts to Slack (reports, notices);
- ``retry``: one retry policy for every Web API call.

Other modules reach Slack only through these (and the composition root).
"""
