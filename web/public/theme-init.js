try {
  var t = localStorage.getItem("tidechat:theme");
  if (t === "light" || t === "dark") document.documentElement.dataset.theme = t;
} catch (e) {
  /* storage disabled: follow the system theme */
}
