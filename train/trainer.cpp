// placeholder: written in issue 3
