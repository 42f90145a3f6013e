"""The Lark grammar of the gradcli language; installed as the package data gradcli.grammar."""
