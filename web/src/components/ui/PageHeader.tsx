import { ArrowLeft, Waves } from "lucide-react";
import { ThemeToggle } from "../chat/ThemeToggle";
import "./page-header.css";

/** The bar on top of a page outside the chat (admin console, knowledge): back to the chat, the page's name, the theme. */
export function PageHeader({ title }: { title: string }) {
  return (
    <header className="page-header">
      <a className="page-header__back" href="/">
        <ArrowLeft size={16} aria-hidden /> Back to chat
      </a>
      <h1 className="page-header__title">
        <Waves size={20} aria-hidden /> {title}
      </h1>
      <ThemeToggle />
    </header>
  );
}
